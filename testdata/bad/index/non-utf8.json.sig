{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "fa913df72d9f11734c08f7554209664d760c1033fe485ee5526922a403143e4ba6776412203ac619338353753e734b7422b57931ce62694637c3dd2b862a590b"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "8e107f2c5379678dbdd78d321f23d52e123e1c4e8d799fbd0eacbfd4b36b8dd3379a09d75e9a32e9c3fc782467fb1cdc79b20009b90dff4b0f3767c503b29308"
    }
  ]
}
