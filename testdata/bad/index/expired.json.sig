{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "119a20e0272af3c3d6e1fa083cfc226e7b66a3c13753882719d57da5472f5889c5daf5fc982aca0c52f578905c27242f4bc7117ed22c62ff724aa916b708fe09"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "e481b618e03fec2146fe0005045fbfef48bd6c0bbe966a432a886d3e7c48d8080376886ead7e40d433395ba6a811a0fa428195d56214d950d985a283d3d57605"
    }
  ]
}
