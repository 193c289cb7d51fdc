{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "55ead7b18be48ec7ce9359913b105d46df30d806a2c2bd4fa430211bfa1cc54245aa4d25422fc3949fb45dd00f49a0c3f5185e40272f1382b00ef454f4260703"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "e06d7e12f80952203e53a29cdfa0666063c41c44c2f4473fe9f7935ef1c4ff8224de2a9f9e52c68c26aa182dbcd9f27a8ba63b7f285d5c5d96ca89c20b14920a"
    }
  ]
}
