"""The Python peer of ice-test: aiortc for WebRTC, grpcio for the signaling contract."""
