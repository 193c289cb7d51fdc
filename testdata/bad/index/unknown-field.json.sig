{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "a5f20f65deabf2b342f31dbeda23d346f7c62db612f658011bf4313812a0a2c231bb922e9cd6dc5371c8127b97ebe17a0d55d57ee9db59ae8988ebd03fa73004"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "ea167eedfc3aa255e4bb5ad17c7963d1f4203cbe70bc8f281be10b1a0ed3ecd833e5947e71bc46a059fa29a89a4811406a2bfc6c4d4c1da07c0b0611bc857d08"
    }
  ]
}
