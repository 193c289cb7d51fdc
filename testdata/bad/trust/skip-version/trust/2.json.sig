{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "a4b0bfa158d835a1dea3dbd958fba62e1d43f670b99df5414aa52750dfdaadfb",
      "sig": "609affdeba50e733421800abd6643470e55a4405394f5858bd1e0dee9b31ae128ae2bb822dfd0d7806b2eab4e3d91b26654ed2e6c927bfa07b3a5cc528223c0a"
    },
    {
      "keyid": "fe93b01e3c4aa0e0a976e814ea007ef4900af17e5c1b9dfc3e988f9cab6ecb33",
      "sig": "6f54e341571faffaf31fd0647af615629a50983c51fac866afbbb1843ef5741dd83951c72858f235732f308d178f07fb4978b9ea3ce1b3d6deb3b595ed15a70c"
    },
    {
      "keyid": "4ee0dc92d4f3601203ef6641826eb4e7f2c282c2e53755b873685db996bfd7cf",
      "sig": "ed446ecae5c14435ffd24e9586b74a59723218c04d8be47fdd2a66b0e78e793d657b12b07940d9572bc511b0ed8c3eff17f8cc4bab6cb22e71a0bb831863950c"
    }
  ]
}
