{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "40204a787c57a0ff62e488d3298b1ed09f2a9fbd66824d8e93760620a00aeb28c032cdd2b770aa0a6ee3e2ec90209df6d6faa776141cc91475c6d19a4c19b10b"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "486798cafbe31231980993bd587679392e30bd7aa99913800edd3152c3ee17854b50ed458e794bd506df4552d7ae2d5de4d175ba423c9611e3937d64f1b2fe0b"
    }
  ]
}
