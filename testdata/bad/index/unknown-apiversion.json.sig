{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "88f076c123d016a35bb3997c58f2481ab1e6d4ea0e94837ebb661c334d0be7e3bf56d4b0441faa2f2272b1a980d5d27e7cd98da086b26744ff2ab289c8c1b004"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "2e0b342e79f579819b701c498ca5bb61a1356464ee9ea906cc4bdff136058565694e08958a55ad2fe0a42768023f5ed03c2e0b1187d452b7f00a4ac372d38506"
    }
  ]
}
