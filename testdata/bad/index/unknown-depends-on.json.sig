{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "7e6bf32aaae9c450debb165c6c766f92404b408bd09f9d107d57ef4953053bf293c7b6019a7352f732970daa8890954ca53af1eafe3155f4568c5fd741173f02"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "f14e4d0687e454caad164c0f1c1a80719c567d1be7cfade21e7f0d713d58294726cd9fcfb2b8f4cf1c7f0a075823868e810f66c803412a28f60f3778361bd50e"
    }
  ]
}
