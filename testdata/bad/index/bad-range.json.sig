{
  "apiVersion": "coxswain.dev/v1",
  "kind": "Signatures",
  "signatures": [
    {
      "keyid": "bd3caee8a58503aca584eaf1da082119e8a2a45ab6b8a8c3300c82093d9ebee4",
      "sig": "57970731405101984962973b38cd2497d0f16ef879fdd671cd9c0bda5766526a770ca9e6e5cae7dbefa041166b07474aa69ca2f32dec7b970c4ecd4721093502"
    },
    {
      "keyid": "a619452d6211a42eafdc9b36e6a07f31c4794419f23059bf8300ce5ec3a674d1",
      "sig": "b103c2082ad91c9bf17a5f503e6bb4e01587d04a2bfd5845c3d9920b75d1b1d3b3d034e180804c7e179154f6697e5f919a5603ab72979804bc7fbf17bdbf370f"
    }
  ]
}
