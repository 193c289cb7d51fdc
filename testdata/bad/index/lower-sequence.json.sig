{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "8e7691d25b32f493b125840bf9a405b5abd58c66f55c5dd5804d95f4fa548efde3c6b39e4bec50d6adcab2021a7f160f925ae12a2a19c412c632882bad73ed0d"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "20ae07dc8602a96f8f7f44bba954387061ce6a0954e0d3a1b1e93abf604e7a720ab757fde8422dbcf8aadd236a0c36f703d463085a5f071fd56e848008d71e0e"
    }
  ]
}
