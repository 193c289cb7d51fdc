{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "04d6289f4b81e0951f64baff8baea1d664acb2299d2484835bcb6b6350ae8a47f81f9911e52a185463dc7844c9daddb58d589fc903aa5e45598257158590960f"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "17eab62d2a7e2dff58671ff88cc9762ca0f2da5b4c49e7e60600eb761e36fd60c80f91542a55541ff7bbd6cf6a6ac9c5b87de556271326a4eb12005524078907"
    }
  ]
}
