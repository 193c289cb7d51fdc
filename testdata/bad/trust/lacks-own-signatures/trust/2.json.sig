{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "a4b0bfa158d835a1dea3dbd958fba62e1d43f670b99df5414aa52750dfdaadfb",
      "sig": "5ea91f8c32f57066bb4076db99d89e37ea1b6cea3a0a6c7004a0d4b74f2a04164649e2f5372e172771c31327c54c8dfd60b5b0a09e22dd7cb7b0a372d0e0ef0d"
    },
    {
      "keyid": "fe93b01e3c4aa0e0a976e814ea007ef4900af17e5c1b9dfc3e988f9cab6ecb33",
      "sig": "1a67f344f6fefcc32564f4fa8ce1950469bc21e0108f414a5750abcc68d7603ada41c2c24f4492fae210ae15d4f917730032fb8d95a14bee65a0c3fee8928d02"
    }
  ]
}
