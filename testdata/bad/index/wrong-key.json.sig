{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "a4b0bfa158d835a1dea3dbd958fba62e1d43f670b99df5414aa52750dfdaadfb",
      "sig": "cff8b4b026e75631ab9bd41ffca8bec42129d7a92495cb6e0d9abb99ba30b75cfc1b4f4bd53fe859c17b2a63eaa99eeb9f99ba9809469fd2a402575610698e0b"
    },
    {
      "keyid": "fe93b01e3c4aa0e0a976e814ea007ef4900af17e5c1b9dfc3e988f9cab6ecb33",
      "sig": "754df963b1e7a9ed12bce0c2232a25418f7b7632c8fff3f79f23d34915f963b2154de78cb559cfeed1b5c79cbbde2e6b257728c76795a74270262ab4476f2505"
    }
  ]
}
