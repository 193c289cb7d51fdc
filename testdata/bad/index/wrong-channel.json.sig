{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "ea6401b23ac71905ddc76564f70d9ba40d2dbeb20db49e2ba2be1801adaa0c6c8fedbd5f5b2d43c49eb9651d7e3e4f288679cf7827bec87757e51cbd22611500"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "56c450efd69710b209d6feae164d9dabe94a34bffb8377235a35bed295edef644b66dd8247fc8da698236f0544b4e369a6afde4e1c1b7351b7f33337799a1209"
    }
  ]
}
