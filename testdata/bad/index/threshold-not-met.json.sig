{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "63a8c67d86e6d2293e866665371059ab4bcee79a5baf72edb95ab0c19e71a68646968c52e66bac69a1ee87be342d711113ff3f353b5040cd900f0b24f7309a0a"
    }
  ]
}
