curl -X POST http://localhost:8000/analyze/ \
-F "files=@/path/to/your/image.jpg" \
-F "prompt=Generate a story about this image in the style of Anthony Bourdain"
