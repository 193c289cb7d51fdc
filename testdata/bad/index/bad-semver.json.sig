{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "f79273f5f0c519adc94f4a354d758b865355e1671ed1baeea82b4d39349781c92a90a193b360d0d0f301b7180fd1107886d8caad201451033accee22ff2a6304"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "9c06feebb7a497235bac8a111b9ede056038059ea9dbedefedfd6a2aaa1916e5436856a3763bdabaf64367c2d44dba611cbcb1e9f0bc70d022debd9299d92c0d"
    }
  ]
}
