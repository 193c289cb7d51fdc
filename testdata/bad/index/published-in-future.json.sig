{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "a806ae8b9978e68887b13b02cc55e70a8b1e4bcd5e2970b7c0132b58d5dac86c1cfa7cc4f749fcada9d7d0883961789f22078afd599451e90fc21ba9714b4002"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "e053221d57730843d4f20c54d2d09f19fa608f3f06f93f2a85da7ef352efa3e392c54773c2d6791ff81a3080943014059b8f941e420d77ceb622979ccb8d7201"
    }
  ]
}
