{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "ZZa8c67d86e6d2293e866665371059ab4bcee79a5baf72edb95ab0c19e71a68646968c52e66bac69a1ee87be342d711113ff3f353b5040cd900f0b24f7309a0a"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "aadfcc2aee09fd4fe6b29662c637b84a059bd4c9796a1cc5b86ac4ef29ed1740d45b70462f120bb2ff5ce03ee9146a71e8b9b188f32b5f5a9252f44a4e980e0e"
    }
  ]
}
