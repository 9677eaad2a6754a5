const formData = new FormData();
formData.append('files', imageFile); // From file input
formData.append('prompt', 'Generate a story about this image in the style of Anthony Bourdain');
fetch('http://localhost:8000/analyze/', {
method: 'POST',
body: formData
})
.then(response => response.json())
.then(data => {
console.log(data.english); // English story
console.log(data.thai); // Thai story
console.log(data.token_usage); // Token usage statistics
})
.catch(error => console.error('Error:', error));
