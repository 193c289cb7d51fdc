{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "19c6b89a01cc7d3bbf6a8e569d59651572030d5fc1ac922324d29a928912bcfc99ccaec6491f3277b23df08e90ced27faaf625092dd877add8667229b131e60f"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "5d99d4211258d9b2cf6406a683755c6c9f5d20ffc3ac857046486274eab09d4e8bd25614381612c584f5c7c6e674a7c0930bf56277d48d0834ac42a35bcc5d0d"
    }
  ]
}
