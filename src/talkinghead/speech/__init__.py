"""Speech → talking head: audio (or text, through eSpeak NG) → jaw and lip motion + real idle head motion →
a landmark track that :class:`~talkinghead.inference.animate.Animator` renders.

- :mod:`.shapes`: face-size-free landmark geometry (canonical frames, neutral faces, mouth opening)
- :mod:`.model`: the audio-to-motion network and its files
- :mod:`.bank`: the bank of real head motion, blinks and gaze
- :mod:`.train`: ``talkinghead train-speech``
- :mod:`.tts`: offline text to speech with eSpeak NG
- :mod:`.drive`: audio → a landmark track for a source face
"""
