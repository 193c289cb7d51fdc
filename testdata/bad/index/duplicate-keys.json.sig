{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "753aca6f36c332a58de32369fbcf2cb06151ecbfe178023c943df6ce0295ad2b2f5df343e28ab1065833d7dd42d403f22942e872e5bcbfbd7b12ae93e1923401"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "13ae6093950d51f2e30752fe37f96781ee58c2563b52a057da07808a7e2268155f94252873b533e2b4d0a830604e6c14d527ac2d04531a36d659650260d39f04"
    }
  ]
}
