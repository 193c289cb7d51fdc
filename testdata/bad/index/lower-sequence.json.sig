{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "7d0cb232b968fcc3dc3f7da4e2efc081f64ed5c72e8b8feebd7c53588c8ac01223980b0c1a39e65f7c52c3412d3e97317440125d6e21a96dff9be36fc295270f"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "4b2372916f9291b9b99035caef2bf5f7cf95ede359268e805a7c6bd3aa0a7608a2f7c1849d5222c21dd6ba79d95a7dbbc24a58e66b2dd5b80474b596ed432c00"
    }
  ]
}
