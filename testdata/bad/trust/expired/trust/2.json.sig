{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "a4b0bfa158d835a1dea3dbd958fba62e1d43f670b99df5414aa52750dfdaadfb",
      "sig": "3ca23daec53776f83de2573c78e86340d29913b34b4c8036d37382f7c3977ad33ec6122404ce4f101e921bb80bb7c775b2f4bdfb54d7fafd64e88edc537f740b"
    },
    {
      "keyid": "fe93b01e3c4aa0e0a976e814ea007ef4900af17e5c1b9dfc3e988f9cab6ecb33",
      "sig": "d8a702d1689130a7df3a2953952f7937da57998f0ab667b3feeac87b38ee4f556895cdbe226e13c6f8cbe3a356cff30dde51c22d21ea24c738d5e0f3ca94d308"
    },
    {
      "keyid": "4ee0dc92d4f3601203ef6641826eb4e7f2c282c2e53755b873685db996bfd7cf",
      "sig": "ef95536b596c7ceda339f072c91d416c7dc4d32fff700fe067c3f21ed59ab351356a8ce2fba656bc1676201fa7d3029ac5eea6827a969555c21eb6fef1425306"
    }
  ]
}
