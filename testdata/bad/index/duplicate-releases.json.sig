{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "ec2380919eb463e80892ddc79a812072103e0dbf7e7b0ee57cc7b691b957a8e685d6de9fe9482fc17613c44b1b20f0eac3d9330f0aff96355a696f164ef3c703"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "bbfa91f51d81d95c507567cac819ae6cffd3ab51bb93c8cd3df86001d0afeb6abbcc928295c022fd1cb81c7a2569af08ae299b9b2b99a7a8223b3d9cc37c0106"
    }
  ]
}
