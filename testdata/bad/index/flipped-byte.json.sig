{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "1099cdd6529fd4486265a05fe1f5dafdac90134ac7240e542645c37eb4ad45f7f41513fe46d00efeccda7ebadac1ce2442f98c95153f38c18c17fb824cb31b03"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "58cfd92e4628a9c29daa89d82fa4e5785e8331c88ad13d62e2aa51e8b440494885512e4aadcc06e90cc72bd0366954bb0a35d33ef294f07740ef3135ca30000d"
    }
  ]
}
