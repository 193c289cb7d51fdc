{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "6b2239437308fd97cf8d580efa3b0d8b4b3a4ef0df166ade81c05b15f8bbacdb3da3272334e9d91403106c023f4fbc97d8a551943f2c9da1643da21a550fca0d"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "3b0540224b17fb690811e2d0953b8a1d89f0c5369393380e970a595a702ee6efa9d338d5ec6e5f8d0a42dd62e3841d206ff29135570003cb16104cb4005a3e04"
    }
  ]
}
