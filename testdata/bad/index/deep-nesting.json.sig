{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "6b379a64e4ad6490181f34e7b5cf5ce71c3102a0f700922c8ff55da91195bc27a1cd98f59c1991b382df702f18ecad47f72f1a444c4a00c69c34384887571f04"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "ff934a47b4cdd637f25bfa95b4859f8fac22ee1978d16bc080cdf6d1ed05846808b9b674164a39ad9a9a25da2c55fe4e7c35f9c81ab1617bd6234445006c7e04"
    }
  ]
}
