{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "8daf3562df89b059993b7d9d26594b5502c6dc8a3e539f3d89bbcdf9de66a44ac8d1ab48ba25103b304efdf12cb8c1006c928a9d5c94f533c7b2263fd7d52306"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "b7becceb7872d4f661f93840ad1fb761e53df09af8fb234279cf59bf936297559ff45cc988bdb5f7f83f0a7857a4170ef7ec14eb780679742bc6678e1dfc5904"
    }
  ]
}
