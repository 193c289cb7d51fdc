{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "1502fd7476e9b1446e58d497b6bcc4cda79af110a849c8bf3f8cc17c2f8aed1c31c5414c04394aee8d924962b5e7cc900a1b9a4f27a552c879842baa2441150e"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "51fc74d01608da428a5de5f720463fbd4676bb3caed614b4aa66f18bace8409952947f4f4c7e45d20831ae7ddac779c4606482119af499207e7831be3378ae07"
    }
  ]
}
