{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "c92e5aa02111dc4adcc839769dee110fe1750cb42303596b668a7fbea050a926301e7d1184a9ad9b64cabc2a91398326617ddd867f63ebe95c97923718edac00"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "ed4eb462822fc35f5b20f11a18bf2870e180d9bd29532cd048c3165fe5fe44fc689ad5ab488042b9262be81f4c16c3bd48f9c70f0f7b24ce813b9b0ef677d10f"
    }
  ]
}
