"""The book's Flower app: a ClientApp and a ServerApp that train a small MLP on digits."""
