{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "86c30b972244eea439c84fc0aa69f4b50f6f78ca6bafeb994df6a9e16e0665e4817cd85d68a7fb319f78525045b7d55e49f964bd5ca7fae9d583d855667cce03"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "8436e664fce1635ef920a52bb37d720a98b86b0fcea0fc2c083606ed97404f0c73ace4d355413b8a6d4036567727c01aaab19f45c8cb77e9edefaeacef898b09"
    }
  ]
}
