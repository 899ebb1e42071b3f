"""The facial emotion stage: face detection, tracks and facial-expression recognition.

Per deduplicated utterance segment (each processed once, whatever number of prefix samples
contain it): sample frames at a configured rate, detect faces (MTCNN or RetinaFace), link the
detections into tracks by IoU, classify each face's expression (FER2013 CNN or DDAMFN), then
summarise each sample's target utterance into the facial emotion `E_cls` the FAME-Net prompt uses.
"""
