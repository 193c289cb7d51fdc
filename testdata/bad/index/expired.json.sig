{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "8fa3a06c3fca1d492fbe5ca8d5933c79618a30471c7e94a18b84ee7315e415373a2f78a8e1403f196c8feace859b14d47d388ba2396126d893a896359ef83807"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "5c09f967488700c66d4562f5d7dfbd01fb11326ecd208b19a166fc16df4353743bd6089e4a001179eb17e1600b1cbad1b3dac6785b476f03e813fcf6e368d103"
    }
  ]
}
