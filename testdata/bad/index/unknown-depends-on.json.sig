{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "cb02fa178a4d08cd9d7d14417f641141b9542aeab5816751720eb997cb047659c15b4acb426ab19a85d858477b82cfcef5f5ed613bca1fb12f25ce64fd86e402"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "452101b0c0cf5b7dfcd0d141244caf17415cb6fcb2cb56240e21f7aff15c3cdbc0e1e8b18feb43e9267f4ba070d869de48039b4bcfd85dc6e3667511316e4a05"
    }
  ]
}
