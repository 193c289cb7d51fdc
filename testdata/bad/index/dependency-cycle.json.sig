{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "23d069cfe5e58c038624542838462f8d91913fbd1c33f589c51a529af9263960d720cca1627a7f3f79bf41e9dd4547a4a315440cd4e5d9983b2e217a7247f903"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "1f73dd79a994b5f043345bb95eb2790f314c98feb1ae167dc28d2e7f57fb2e6a691645e989d564808bbc86c37b32d179fb94a1b8b8b110f6b295ab49a5f31402"
    }
  ]
}
