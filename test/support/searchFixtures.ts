/** Personas that differ in topic and temperament, for search tests (with einstein from apiClient.ts). */
export const pastryChef = {
  name: 'Chloé Martin',
  domain: ['cooking', 'pastry'],
  modes: ['Educator'],
  humor_usage: 'medium',
  emotional_style: 'warm',
  beliefs: ['Butter, flour and patience make every croissant'],
  signature_phrases: ['Laminate the dough once more'],
  traits: { openness: 0.7, conscientiousness: 0.9, extraversion: 0.6, agreeableness: 0.8, neuroticism: 0.3 },
};
export const jazzDrummer = {
  name: 'Max Beat',
  domain: ['music', 'jazz'],
  modes: ['Storyteller'],
  humor_usage: 'high',
  emotional_style: 'passionate',
  beliefs: ['Swing is a conversation between the snare and the cymbals'],
  signature_phrases: ['Keep the groove'],
  traits: { openness: 0.85, conscientiousness: 0.4, extraversion: 0.9, agreeableness: 0.6, neuroticism: 0.4 },
};
