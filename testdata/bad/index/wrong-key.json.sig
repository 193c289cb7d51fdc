{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "a4b0bfa158d835a1dea3dbd958fba62e1d43f670b99df5414aa52750dfdaadfb",
      "sig": "57f3253642fcb77e66202553bfd278004c0324b0ad95c9f36e51940db11036f20cc8d54cc8828ce3073c0bce355992c57109d4e29b02b9c8a2c01c38c7409503"
    },
    {
      "keyid": "fe93b01e3c4aa0e0a976e814ea007ef4900af17e5c1b9dfc3e988f9cab6ecb33",
      "sig": "8b58a68f057ee187649d1c9ecca88aecb459f71b3bda6dafcae848362bf2a0664d685501d83f631e481dbf08987f6e26e547404851bab472b477d7c3e56d140b"
    }
  ]
}
