{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "a4b0bfa158d835a1dea3dbd958fba62e1d43f670b99df5414aa52750dfdaadfb",
      "sig": "c594500295728a3baf4808d67d8c4b27d301b727da4fbdd4aaf9b9e0c63a0fcb6d0b749953c9f3deb17c3bc8b7430a2faf0ad490d01da372c997853015200604"
    },
    {
      "keyid": "fe93b01e3c4aa0e0a976e814ea007ef4900af17e5c1b9dfc3e988f9cab6ecb33",
      "sig": "66511cc58cebd0334eebdb7a70b53d9a95e49175c67cfcfd4030c24caf2efaf1bd60061102e3c08b9c6183200c9601eeec57f79c6bcdb294fac6dca72c881d08"
    }
  ]
}
