{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "00f8ca9f8a705a18105b5f10cfd909b3029079842655b0a1a8cb2c6bb5d4420e2b53d917fca189f76ff9e52786943a8e2d1f5111eb174fefc3fabf3830ac0101"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "07d250f92f53049074492fe2e3ac2bfee15546efd8b19e37c5d89128b0c5dda4656d29aeff01d1f800e8216304bab23ac307b8e570bbaed667e7cd29c7873c02"
    }
  ]
}
