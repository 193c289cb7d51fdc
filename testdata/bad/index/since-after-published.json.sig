{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "364e0c3c3bd1c56434ccf295aa7981ceda6be1065c403ec60fdff846008aef8c7bde5d4024093c664e3cf2a501717e8f64eee403f1c73f5c2699ec7c1f71470c"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "2877c1c688746fa9cc162137a6eb094ea7148d3a02e619da379116186b1a89fadc9886aef0c6fa7aca9124fc1a6eba00dc06703be7938b8c2f6302ed158e5502"
    }
  ]
}
