import requests
url = "http://localhost:8000/analyze/"
files = {'files': open('image.jpg', 'rb')}
data = {'prompt': 'Generate a story about this image in the style of Anthony Bourdain'}
response = requests.post(url, files=files, data=data)
result = response.json()
print(result['english'])
print(result['thai'])
print(result['token_usage'])
