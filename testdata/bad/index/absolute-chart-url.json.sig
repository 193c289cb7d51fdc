{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "20afb2ec6f5e10385cfb0339a5e7a57559be98d573297e670c2e6af925c527ac3c8665247f1ae64bbf7247ee0662ab407b0ae74439d27a54900993fe01df1f0b"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "c2e43d6bf2d125e7373485dfc04ab5fc2d84d8d1c4cc944dc4b4c95d5b2a4074b693f55c10890acab7e5be5a54e50a7be663e337ee941efcdfc6fbc36fb4c80f"
    }
  ]
}
