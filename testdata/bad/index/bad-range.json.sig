{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "ca7aa2ab27442a09c563f223f1faa239683eaeb2fd819536f1b90b0daf069922f9c8d5a4bf2f50556aaf1976f9e591cff1145f25b0a7aee3b2b72bfda1a5bd05"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "44344e563fb779de8ff418b696440dcc1dd856bfd5f3e1b4f57571bfcf495f6bc880416f3d11290bf428af7d23a0fff7e4f72b93801d9e131be53026aa62dc09"
    }
  ]
}
