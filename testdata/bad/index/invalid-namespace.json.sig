{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "9d6a9d80342515252145d4adc9d1ba4894beedc0dbdbd16ad3074b819b81e0fcf30d0df8e9010fb3e41317d0763375db17dba26ffed53d6b8c33daacf8e54100"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "ca1a93a1c3c0e8c60f4a8a7d9dd3f13b4269dfa5eaa65b392341d57364d25f27216f0712bf25afe18adc1cbcc3c88cdec5425eec9bd475c44a34b1aab220130e"
    }
  ]
}
