{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "26fdef50ef733f648d874c28809c8465077ceb9b6e17da0e2ce7e87a4eefca9b9a822092d9531f571b8d64d722e55f2a4cc6081779453eec03926dcff4f2bf01"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "619317b9d7d12ea0cdc23b1f1b9ed5dc1d488145b37abe1b17bbab6ae17464c45c2b4c0fc5834aa8a743cd508e82ef8dfbfb0aa73b0960c5f0b9da0166c8b309"
    }
  ]
}
