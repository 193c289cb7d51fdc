{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "ad931d763fe0c43b723347bf10d876dd8920dbd082f9042b6f38f5df121978bec21e4e0eac72d2404152014f3a7fa090441f06f19d4db11a8fa0243e1ac62402"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "d517a9c6d4396014ac8b92b0fa60e0cdbe99e665fea3ac5f371a84db01a0eaa8f5df34fa44457d69d1972d5932578cb07b3017d5149671b8bdc762d8ca837706"
    }
  ]
}
