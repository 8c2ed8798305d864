// Calls the API (at ?api=… when given, another origin: CORS) with its cookies, and shows the count.
const api = new URLSearchParams(location.search).get('api') ?? location.origin
const visits = document.getElementById('visits')
try {
  const response = await fetch(`${api}/api/visit`, { credentials: 'include' })
  if (!response.ok) throw new Error(`HTTP ${response.status}`)
  const body = await response.json()
  visits.textContent = `Visits: ${body.visits}`
  visits.className = 'done'
  document.getElementById('api').textContent = `API at ${api}, called from ${body.origin ?? 'the same origin'}`
} catch (error) {
  visits.textContent = `The API call failed: ${error.message}`
  visits.className = 'failed'
}
