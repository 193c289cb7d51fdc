{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "ced15114a18f74a11816176ddf7bafbc010348b0a46afffbf28295dce851315d10ce62d87dce93bf9fcc991aaa410ecf28add2008bbda4353b9ae710c3ca5d00"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "c65fd3c9d2b98740e89050b2152017492b8daa75ecc477f14c55efa6a594125aa6f5081d5498182f203a38a6545d34b670e9ca127b503a0a26e0101b2f000203"
    }
  ]
}
