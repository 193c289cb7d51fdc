{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "9ad9b3bbc6eb1b4f3f0c92b108bb80bfe56e30970332e3dd76585044f7b80d5c8c491ada4f077b5bfa77e989020f05dce3bbb7c5cefc28dfc8fb94a75063da05"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "13e102c68a0ad073c681442d57e7375448d7928ea9e65a273c9d3860d09dcf3086c9dba6927bcc084cf0415961b56e4f57ea750b8cd43896c481cf59f31daa0a"
    }
  ]
}
