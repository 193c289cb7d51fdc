{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "fe93b01e3c4aa0e0a976e814ea007ef4900af17e5c1b9dfc3e988f9cab6ecb33",
      "sig": "1a67f344f6fefcc32564f4fa8ce1950469bc21e0108f414a5750abcc68d7603ada41c2c24f4492fae210ae15d4f917730032fb8d95a14bee65a0c3fee8928d02"
    },
    {
      "keyid": "4ee0dc92d4f3601203ef6641826eb4e7f2c282c2e53755b873685db996bfd7cf",
      "sig": "26d9ba7ec6e7a023e86f1a6876594ee4245d78aeac9ba344ee26eb0667fd88f4c3a668e7bae9586d5fe63a17a4b88eaa8dabafc48baebdcc846909aa89b44200"
    }
  ]
}
