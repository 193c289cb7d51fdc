{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "8e5ba8bdad3288f169d7ac62cb0b91ff49c7aa524bddc31b97b8c50c24a7a5aeabd7470d1797f5cfebfeb4b7133da1a0ba17eabe8f3f59d8468ff8f1f5f89c0b"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "1557ec9ecd2dbd8143529738b06bf481a5f13a00c9ef24d35a3f01d331911073e243d900a9100042b4af6559015d185d1b46bfdb934ede12db98e4f32de50f0a"
    }
  ]
}
