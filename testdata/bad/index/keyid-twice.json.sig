{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "1099cdd6529fd4486265a05fe1f5dafdac90134ac7240e542645c37eb4ad45f7f41513fe46d00efeccda7ebadac1ce2442f98c95153f38c18c17fb824cb31b03"
    },
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "1099cdd6529fd4486265a05fe1f5dafdac90134ac7240e542645c37eb4ad45f7f41513fe46d00efeccda7ebadac1ce2442f98c95153f38c18c17fb824cb31b03"
    }
  ]
}
